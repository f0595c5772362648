{{/* Names and labels shared by every template. */}}

{{- define "opportunist.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "opportunist.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains (include "opportunist.name" .) .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "opportunist.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "opportunist.selectorLabels" -}}
app.kubernetes.io/name: {{ include "opportunist.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "opportunist.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "opportunist.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "opportunist.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "opportunist.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "opportunist.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* Secret holding the metrics API serving certificate (chart or cert-manager). */}}
{{- define "opportunist.metricsApiSecret" -}}
{{- printf "%s-metrics-api-tls" (include "opportunist.fullname" .) }}
{{- end }}

{{/*
GOMEMLIMIT at 90 % of resources.limits.memory, in MiB, when the limit is
written in Mi or Gi (the usual forms); empty otherwise. The margin is for
what the Go runtime does not count (stacks, its own structures) and for
the heap overshooting its limit while the collector catches up.
*/}}
{{- define "opportunist.goMemLimit" -}}
{{- $m := toString ((.Values.resources.limits | default dict).memory | default "") -}}
{{- if regexMatch "^[0-9]+Mi$" $m -}}
{{- printf "%dMiB" (div (mul (trimSuffix "Mi" $m | atoi) 9) 10) -}}
{{- else if regexMatch "^[0-9]+Gi$" $m -}}
{{- printf "%dMiB" (div (mul (trimSuffix "Gi" $m | atoi) 9216) 10) -}}
{{- end -}}
{{- end }}
