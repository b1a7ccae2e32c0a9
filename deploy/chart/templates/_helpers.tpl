{{/*
Chart name and version, for the helm.sh/chart label.
*/}}
{{- define "sluice.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels of every object.
*/}}
{{- define "sluice.labels" -}}
helm.sh/chart: {{ include "sluice.chart" . }}
{{ include "sluice.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
Labels that select the pods.
*/}}
{{- define "sluice.selectorLabels" -}}
app.kubernetes.io/name: sluice
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Labels of the load tester's objects, and those that select its pods: a name
of its own, so that no selector of sluice's takes them.
*/}}
{{- define "sluice.loadTesterLabels" -}}
helm.sh/chart: {{ include "sluice.chart" . }}
{{ include "sluice.loadTesterSelectorLabels" . }}
app.kubernetes.io/part-of: sluice
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "sluice.loadTesterSelectorLabels" -}}
app.kubernetes.io/name: sluice-loadtester
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
The image of both containers; an empty tag means the appVersion.
*/}}
{{- define "sluice.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/*
The user name the shifter's requests carry: its ServiceAccount's.
*/}}
{{- define "sluice.shifterUser" -}}
system:serviceaccount:{{ .Release.Namespace }}:sluice
{{- end }}

{{/*
Every sluice annotation, as a JSON list: canary.KnownAnnotations, which
test/generate checks this against.
*/}}
{{- define "sluice.knownAnnotations" -}}
["sluice.dev/canary", "sluice.dev/step-weight", "sluice.dev/step-weights", "sluice.dev/max-weight", "sluice.dev/interval", "sluice.dev/threshold", "sluice.dev/min-success-rate", "sluice.dev/max-request-duration", "sluice.dev/analysis-window", "sluice.dev/min-requests", "sluice.dev/evidence-deadline", "sluice.dev/blind-deadline", "sluice.dev/port", "sluice.dev/gateways", "sluice.dev/hosts", "sluice.dev/progress-deadline", "sluice.dev/skip-analysis", "sluice.dev/confirm-rollout", "sluice.dev/confirm-promotion", "sluice.dev/router", "sluice.dev/virtualservice", "sluice.dev/httproute", "sluice.dev/match-headers", "sluice.dev/match-cookie", "sluice.dev/iterations", "sluice.dev/mirror", "sluice.dev/mirror-percent", "sluice.dev/session-cookie", "sluice.dev/policy", "sluice.dev/canary-template", "sluice.dev/canary-revision"]
{{- end }}

{{/*
Namespaces the webhook and the guard policy never see, as a JSON list: the
release namespace first, then webhook.excludedNamespaces.
*/}}
{{- define "sluice.excludedNamespaces" -}}
{{- prepend .Values.webhook.excludedNamespaces .Release.Namespace | uniq | toJson }}
{{- end }}

{{/*
The --default-* flags: the canary settings of a Deployment that sets none,
the same in both containers.
*/}}
{{- define "sluice.defaultArgs" -}}
{{- with .Values.defaults -}}
- --default-step-weight={{ int .stepWeight }}
- --default-max-weight={{ int .maxWeight }}
- --default-interval={{ .interval }}
- --default-threshold={{ int .threshold }}
- --default-min-success-rate={{ .minSuccessRate }}
- --default-max-request-duration={{ .maxRequestDuration }}
- --default-analysis-window={{ .analysisWindow }}
- --default-progress-deadline={{ .progressDeadline }}
- --default-min-requests={{ int .minRequests }}
- --default-evidence-deadline={{ .evidenceDeadline }}
{{- with .blindDeadline }}
- --default-blind-deadline={{ . }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The ServiceAccount token, CA and namespace at the path client-go looks for
them; the pod mounts it only into the containers that call the API server.
*/}}
{{- define "sluice.kubeAPIAccessMount" -}}
- name: kube-api-access
  mountPath: /var/run/secrets/kubernetes.io/serviceaccount
  readOnly: true
{{- end }}

{{/*
The security context of both containers.
*/}}
{{- define "sluice.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
{{- end }}
