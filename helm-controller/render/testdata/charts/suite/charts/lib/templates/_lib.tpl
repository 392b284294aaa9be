{{- define "lib.label" -}}lib: {{ .Chart.Name }}{{- end -}}
