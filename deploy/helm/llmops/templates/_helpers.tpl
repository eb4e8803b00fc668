{{/* Names, labels, images and the shared pieces of every pod. */}}

{{- define "llmops.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "llmops.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "llmops.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "llmops.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* selector labels of one component: (dict "root" $ "component" "gateway") */}}
{{- define "llmops.selector" -}}
app.kubernetes.io/name: {{ include "llmops.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* PREFIX/ROLE:TAG, or the override: (dict "root" $ "role" "gateway" "override" "") */}}
{{- define "llmops.image" -}}
{{- if .override -}}
{{- .override -}}
{{- else -}}
{{- printf "%s/%s:%s" .root.Values.image.prefix .role (default .root.Chart.AppVersion .root.Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* the API key Secret's name: required */}}
{{- define "llmops.keySecret" -}}
{{- required "apiKeys.existingSecret is required: the name of a Secret holding the API keys (LLMOPS_GATEWAY_KEY, LLMOPS_GATEWAY_ADMIN_KEY, LLMOPS_ENGINE_KEY)" .Values.apiKeys.existingSecret -}}
{{- end -}}

{{/* the registry every component talks to (MLFLOW_TRACKING_URI); fails naming the values when neither is set */}}
{{- define "llmops.registryURI" -}}
{{- if .Values.registry.external.uri -}}
{{- .Values.registry.external.uri -}}
{{- else -}}
{{- $_ := required "registry.external.uri (an existing MLflow server) or registry.database.existingSecret (a Secret holding the registry's PostgreSQL URI) is required" .Values.registry.database.existingSecret -}}
{{- printf "http://%s-registry:%d" (include "llmops.fullname" .) (int .Values.registry.port) -}}
{{- end -}}
{{- end -}}

{{- define "llmops.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.securityContext.runAsUser }}
runAsGroup: {{ .Values.securityContext.runAsGroup }}
fsGroup: {{ .Values.securityContext.fsGroup }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "llmops.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: [ALL]
{{- end -}}

{{/* environment every llmops container gets */}}
{{- define "llmops.commonEnv" -}}
- name: LLMOPS_HOME
  value: {{ .Values.home | quote }}
- name: LLMOPS_WORKSPACE
  value: /etc/llmops
- name: HOME
  value: {{ .Values.home | quote }}
- name: TMPDIR
  value: /tmp
- name: MLFLOW_TRACKING_URI
  value: {{ include "llmops.registryURI" . | quote }}
{{- end -}}

{{/* an env entry read from the API key Secret: (dict "root" $ "name" "LLMOPS_GATEWAY_KEY" "key" "..." "optional" false) */}}
{{- define "llmops.keyEnv" -}}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ include "llmops.keySecret" .root }}
      key: {{ .key }}
      {{- if .optional }}
      optional: true
      {{- end }}
{{- end -}}

{{/* the writable folders of a read-only pod: LLMOPS_HOME and /tmp */}}
{{- define "llmops.scratchVolumes" -}}
- name: home
  emptyDir: {}
- name: tmp
  emptyDir: {}
{{- end -}}

{{- define "llmops.scratchMounts" -}}
- name: home
  mountPath: {{ .Values.home }}
- name: tmp
  mountPath: /tmp
{{- end -}}

{{/* the gateway's serving/gateway.yaml: the values' config plus server and engines */}}
{{- define "llmops.gatewayConfig" -}}
{{- $cfg := deepCopy .Values.gateway.config -}}
{{- $_ := set $cfg "server" (dict "host" "0.0.0.0" "port" (int .Values.gateway.port) "drain_s" .Values.gateway.drainSeconds) -}}
{{- if .Values.gateway.engines -}}
{{- $_ := set $cfg "engines" .Values.gateway.engines -}}
{{- else -}}
{{- $url := printf "http://%s-engine:%d" (include "llmops.fullname" .) (int .Values.engine.port) -}}
{{- $engine := dict "url" $url "api_key_env" "LLMOPS_ENGINE_KEY" "sync_adapters" (not .Values.engine.resolveAdapters) "max_adapters" (int .Values.engine.maxLoras) -}}
{{- $_ := set $cfg "engines" (dict "engine" $engine) -}}
{{- end -}}
{{- toYaml $cfg -}}
{{- end -}}
