{{/*
Checks across fields that values.schema.json cannot express: the API server or the scheduler would refuse these
values (or Ray could never place a worker), so `helm lint`, `helm template` and `helm install` fail first, naming
the field. Rendered by validate.yaml.
*/}}
{{- define "apparel.validate" -}}
{{- $scaling := .Values.serving.autoscaling }}
{{- if gt (int $scaling.minReplicas) (int $scaling.maxReplicas) }}
{{- fail (printf "serving.autoscaling.minReplicas (%v) must be <= maxReplicas (%v)" $scaling.minReplicas $scaling.maxReplicas) }}
{{- end }}
{{- $resources := dict "serving.resources" .Values.serving.resources "mlflow.resources" .Values.mlflow.resources
  "monitoring.drift.resources" .Values.monitoring.drift.resources
  "monitoring.dashboard.resources" .Values.monitoring.dashboard.resources
  "training.head.resources" .Values.training.head.resources "training.worker.resources" .Values.training.worker.resources
  "pipeline.schedule.resources" .Values.pipeline.schedule.resources }}
{{- range $field, $block := $resources }}
{{- include "apparel.validateRequestsWithinLimits" (dict "field" $field "resources" $block) }}
{{- end }}
{{- $http := include "apparel.httpPort" . }}
{{- $grpc := include "apparel.grpcPort" . }}
{{- if eq $http $grpc }}
{{- fail (printf "config.serving.grpc_port (%s) must differ from config.serving.http_port (%s)" $grpc $http) }}
{{- end }}
{{- $cpusPerWorker := dig "train" "cpus_per_worker" 1 .Values.config }}
{{- $workerCpu := .Values.training.worker.resources.limits.cpu }}
{{- if gt (include "apparel.quantity" $cpusPerWorker | float64) (include "apparel.quantity" $workerCpu | float64) }}
{{- fail (printf "config.train.cpus_per_worker (%v) must be <= training.worker.resources.limits.cpu (%v): a Ray worker offers Ray Train its CPU limit" $cpusPerWorker $workerCpu) }}
{{- end }}
{{- end }}

{{/* Call with (dict "field" "serving.resources" "resources" .Values.serving.resources). */}}
{{- define "apparel.validateRequestsWithinLimits" -}}
{{- $limits := .resources.limits }}
{{- range $name, $request := .resources.requests }}
{{- if hasKey $limits $name }}
{{- $limit := get $limits $name }}
{{- if gt (include "apparel.quantity" $request | float64) (include "apparel.quantity" $limit | float64) }}
{{- fail (printf "%s.requests.%s (%v) must be <= %s.limits.%s (%v)" $.field $name $request $.field $name $limit) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/* A Kubernetes quantity ("500m", "2", 2, "16Gi", "8G") as a plain number, to compare two of them. */}}
{{- define "apparel.quantity" -}}
{{- $text := toString . }}
{{- $suffix := regexFind "[a-zA-Z]+$" $text }}
{{- $scale := dict "m" 0.001 "k" 1000.0 "M" 1000000.0 "G" 1000000000.0 "T" 1000000000000.0 "P" 1e15 "E" 1e18
  "Ki" 1024.0 "Mi" 1048576.0 "Gi" 1073741824.0 "Ti" 1099511627776.0 "Pi" 1125899906842624.0 "Ei" 1152921504606846976.0 }}
{{- mulf (trimSuffix $suffix $text | float64) (get $scale $suffix | default 1.0) }}
{{- end }}
