{{- define "fednet-operator.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "fednet-operator.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "fednet-operator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "fednet-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "fednet-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "fednet-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "fednet-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "fednet-operator.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "fednet-operator.kubeconfigNamespace" -}}
{{- default .Release.Namespace .Values.kubeconfigNamespace -}}
{{- end -}}

{{/* Rules on the namespaced fednet kinds and Events: in the watched namespace, or everywhere. */}}
{{- define "fednet-operator.namespacedRules" -}}
# Networks and services: read and watch; patch to add and remove the teardown finalizer.
- apiGroups: ["fednet.io"]
  resources: ["federatednetworks", "federatedservices"]
  verbs: ["get", "list", "watch", "patch", "update"]
# Their status, written with server-side apply.
- apiGroups: ["fednet.io"]
  resources: ["federatednetworks/status", "federatedservices/status"]
  verbs: ["get", "patch", "update"]
# Needed where OwnerReferencesPermissionEnforcement guards finalizers.
- apiGroups: ["fednet.io"]
  resources: ["federatednetworks/finalizers"]
  verbs: ["update"]
# Events on networks (refused plans, teardown).
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
# Submariner networks: each network's IPsec pre-shared key, made once in the network's
# namespace and read back by name (never listed, watched or changed).
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "create"]
{{- end -}}
