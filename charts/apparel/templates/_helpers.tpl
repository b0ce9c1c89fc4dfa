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

{{/* Labels apparel.kuberay puts on the pods of the RayJobs the pipeline creates. */}}
{{- define "apparel.rayjobPodLabels" -}}
app.kubernetes.io/part-of: apparel
app.kubernetes.io/component: rayjob
{{- end }}

{{/* Ingress rule of Ray pods: the KubeRay operator polls the head's dashboard (job status, cluster health). */}}
{{- define "apparel.kuberayOperatorIngress" -}}
{{- $operator := .Values.networkPolicy.kuberayOperator -}}
- from:
    - namespaceSelector:
        matchLabels: {kubernetes.io/metadata.name: {{ $operator.namespace }}}
      podSelector:
        matchLabels:
          {{- toYaml $operator.podLabels | nindent 10 }}
  ports:
    - {port: 8265, protocol: TCP}
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
Whether the typed Config has SECTION.KEY, read from files/config-fields.json (generated from Config with the
schema): the chart sets keys that other parts of the project add (serving, pvc_name) as soon as they exist.
Call with (list $ "serving" "request_log_dir").
*/}}
{{- define "apparel.configHas" -}}
{{- $fields := (index . 0).Files.Get "files/config-fields.json" | fromJson }}
{{- if has (index . 2) (get $fields (index . 1) | default list) }}true{{ end }}
{{- end }}

{{/*
The project's config file: what the chart derives (cluster mode, the shared volume, the chart's MLflow, the
image, the request log on the shared volume), under the user's `config` values; the namespace and the volume's
name are forced (RBAC is granted in the release namespace; pods mount the chart's claim).
*/}}
{{- define "apparel.config" -}}
{{- $derived := dict "mode" "cluster" "data" (dict "root" "/data") "pipeline" (dict "base_image" (include "apparel.image" .)) }}
{{- if .Values.mlflow.enabled }}
{{- $_ := set $derived "registry" (dict "tracking_uri" (printf "http://%s.%s.svc:%v" (include "apparel.mlflowHost" .) .Release.Namespace .Values.mlflow.port)) }}
{{- end }}
{{- if include "apparel.configHas" (list . "serving" "request_log_dir") }}
{{- $_ := set $derived "serving" (dict "request_log_dir" "/data/requests") }}
{{- end }}
{{- $forced := dict "pipeline" (dict "namespace" .Release.Namespace) }}
{{- if include "apparel.configHas" (list . "pipeline" "pvc_name") }}
{{- $_ := set $forced.pipeline "pvc_name" (include "apparel.pvcName" .) }}
{{- end }}
{{- if include "apparel.configHas" (list . "pipeline" "service_account") }}
{{- $_ := set $forced.pipeline "service_account" (printf "%s-pipeline" (include "apparel.fullname" .)) }}
{{- end }}
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

{{/*
Pods that call the KFP API (the schedule Job, the drift CronJob's trigger): with `config.pipeline.kfp_auth:
serviceaccount-token` (multi-user Kubeflow) they get a projected ServiceAccount token for KFP's audience at the path
apparel.kfp_client reads.
*/}}
{{- define "apparel.kfpAuth" -}}
{{- if eq (dig "pipeline" "kfp_auth" "none" .Values.config) "serviceaccount-token" }}true{{ end }}
{{- end }}

{{- define "apparel.kfpTokenMount" -}}
- name: kfp-token
  mountPath: /var/run/secrets/kubeflow/pipelines
  readOnly: true
{{- end }}

{{- define "apparel.kfpTokenVolume" -}}
- name: kfp-token
  projected:
    sources:
      - serviceAccountToken:
          path: token
          audience: pipelines.kubeflow.org
          expirationSeconds: 7200
{{- end }}

{{/* Command prefix every apparel container runs. */}}
{{- define "apparel.command" -}}
- apparel
- --config
- /etc/apparel/config.yaml
{{- end }}
