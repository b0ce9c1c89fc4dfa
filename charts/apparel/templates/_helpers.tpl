{{/* Names and labels. */}}
{{- define "apparel.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "apparel.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains (include "apparel.name" .) .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "apparel.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "apparel.selectorLabels" -}}
app.kubernetes.io/name: {{ include "apparel.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* Call with (dict "root" $ "component" "serving"). */}}
{{- define "apparel.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
{{ include "apparel.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: apparel
{{- end }}

{{- define "apparel.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository .Values.image.tag }}
{{- end }}
{{- end }}

{{- define "apparel.pvcName" -}}
{{- dig "pipeline" "pvc_name" "apparel-data" .Values.config }}
{{- end }}

{{- define "apparel.mlflowHost" -}}
{{- printf "%s-mlflow" (include "apparel.fullname" .) }}
{{- end }}

{{- define "apparel.httpPort" -}}{{ dig "serving" "http_port" 3000 .Values.config }}{{- end }}
{{- define "apparel.grpcPort" -}}{{ dig "serving" "grpc_port" 50051 .Values.config }}{{- end }}
{{- define "apparel.uiPort" -}}{{ dig "monitoring" "ui_port" 8000 .Values.config }}{{- end }}
{{- define "apparel.metricsPort" -}}{{ dig "monitoring" "metrics_port" 9108 .Values.config }}{{- end }}

{{/*
The project's config file: what the chart derives (cluster mode, the shared volume, the chart's MLflow, the
image), under the user's `config` values, with the namespace forced (RBAC is granted there only).
*/}}
{{- define "apparel.config" -}}
{{- $derived := dict "mode" "cluster" "data" (dict "root" "/data") "pipeline" (dict "base_image" (include "apparel.image" .)) }}
{{- if .Values.mlflow.enabled }}
{{- $_ := set $derived "registry" (dict "tracking_uri" (printf "http://%s.%s.svc:%v" (include "apparel.mlflowHost" .) .Release.Namespace .Values.mlflow.port)) }}
{{- end }}
{{- $forced := dict "pipeline" (dict "namespace" .Release.Namespace) }}
{{- toYaml (mergeOverwrite $derived (deepCopy .Values.config) $forced) }}
{{- end }}

{{/* Restricted pod security: the same pod and container contexts everywhere. */}}
{{- define "apparel.podSecurity" -}}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{- define "apparel.containerSecurity" -}}
securityContext:
  {{- toYaml .Values.securityContext | nindent 2 }}
{{- end }}

{{/* Environment of every apparel container: config path, writable HOME on the scratch volume. */}}
{{- define "apparel.env" -}}
- name: APPAREL_CONFIG
  value: /etc/apparel/config.yaml
- name: HOME
  value: /tmp
- name: XDG_CACHE_HOME
  value: /tmp/.cache
- name: MPLCONFIGDIR
  value: /tmp/matplotlib
- name: BENTOML_HOME
  value: /tmp/bentoml
- name: RAY_USAGE_STATS_ENABLED
  value: "0"
- name: PYTHONUNBUFFERED
  value: "1"
{{- end }}

{{/* Mounts: config (read-only), scratch /tmp, and (with data=true) the shared volume at /data. */}}
{{- define "apparel.volumeMounts" -}}
- name: config
  mountPath: /etc/apparel
  readOnly: true
- name: tmp
  mountPath: /tmp
{{- if .data }}
- name: data
  mountPath: /data
{{- end }}
{{- end }}

{{- define "apparel.volumes" -}}
- name: config
  configMap:
    name: {{ include "apparel.fullname" .root }}-config
- name: tmp
  emptyDir:
    sizeLimit: {{ .root.Values.scratchSize }}
{{- if .data }}
- name: data
  persistentVolumeClaim:
    claimName: {{ include "apparel.pvcName" .root }}
{{- end }}
{{- end }}

{{/* Command prefix every apparel container runs. */}}
{{- define "apparel.command" -}}
- apparel
- --config
- /etc/apparel/config.yaml
{{- end }}
