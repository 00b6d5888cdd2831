{{- define "hub-operator.name" -}}hub-operator{{- end }}

{{- define "hub-operator.labels" -}}
app.kubernetes.io/name: hub-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end }}

{{- define "hub-operator.selectorLabels" -}}
app.kubernetes.io/name: hub-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "hub-operator.fullname" -}}{{ .Release.Name }}-hub-operator{{- end }}

{{- define "hub-operator.registryNamespace" -}}{{ default .Release.Namespace .Values.registryNamespace }}{{- end }}
