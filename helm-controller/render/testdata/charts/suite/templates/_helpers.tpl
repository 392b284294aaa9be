{{- define "suite.fullname" -}}
{{ .Release.Name }}-{{ .Chart.Name }}
{{- end -}}
{{- define "suite.labels" -}}
app.kubernetes.io/name: {{ include "suite.fullname" . }}
{{ include "lib.label" . }}
{{- end -}}
