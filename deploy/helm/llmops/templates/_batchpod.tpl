{{/* The pod of the monitor CronJob and the rollout Job: the workspace's serving/ files from the ConfigMap,
the shared state (every gateway replica's request log) when state.existingClaim is set.
(dict "root" $ "name" "monitor" "image" IMAGE "args" LIST "resources" DICT "extraEnv" LIST) */}}
{{- define "llmops.batchPod" -}}
{{- $root := .root -}}
{{- with $root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
automountServiceAccountToken: false
restartPolicy: Never
securityContext:
  {{- include "llmops.podSecurityContext" $root | nindent 2 }}
containers:
  - name: {{ .name }}
    image: {{ .image }}
    imagePullPolicy: {{ $root.Values.image.pullPolicy }}
    args:
      {{- toYaml .args | nindent 6 }}
    env:
      {{- include "llmops.commonEnv" $root | nindent 6 }}
      {{- with .extraEnv }}
      {{- toYaml . | nindent 6 }}
      {{- end }}
    resources:
      {{- toYaml .resources | nindent 6 }}
    securityContext:
      {{- include "llmops.containerSecurityContext" $root | nindent 6 }}
    volumeMounts:
      {{- include "llmops.scratchMounts" $root | nindent 6 }}
      - name: serving
        mountPath: /etc/llmops/serving
        readOnly: true
      {{- if $root.Values.state.existingClaim }}
      - name: state
        mountPath: {{ printf "%s/logs" $root.Values.home }}
      {{- end }}
volumes:
  {{- include "llmops.scratchVolumes" $root | nindent 2 }}
  - name: serving
    configMap:
      name: {{ include "llmops.fullname" $root }}-serving
  {{- if $root.Values.state.existingClaim }}
  - name: state
    persistentVolumeClaim:
      claimName: {{ $root.Values.state.existingClaim }}
  {{- end }}
{{- end -}}
