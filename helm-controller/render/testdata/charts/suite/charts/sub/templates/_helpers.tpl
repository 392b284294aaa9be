{{- define "suite.fullname" -}}overridden-by-parent{{- end -}}
