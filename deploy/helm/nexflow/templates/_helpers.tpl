{{/*
Names. fullname is the release name, with the chart name appended unless the release name
already contains it; truncated to 63 characters (DNS labels).
*/}}
{{- define "nexflow.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "nexflow.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "nexflow.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object; pass (dict "ctx" $ "component" "gateway"). */}}
{{- define "nexflow.labels" -}}
helm.sh/chart: {{ include "nexflow.chart" .ctx }}
{{ include "nexflow.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: nexflow
{{- end }}

{{/* Selector labels: stable across upgrades; pass (dict "ctx" $ "component" "gateway"). */}}
{{- define "nexflow.selectorLabels" -}}
app.kubernetes.io/name: {{ include "nexflow.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "nexflow.componentName" -}}
{{- printf "%s-%s" (include "nexflow.fullname" .ctx) .component | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "nexflow.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "nexflow.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "nexflow.secretName" -}}
{{- default (include "nexflow.fullname" .) .Values.secret.name }}
{{- end }}

{{- define "nexflow.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "nexflow.workspacesClaim" -}}
{{- default (printf "%s-workspaces" (include "nexflow.fullname" .)) .Values.workspaces.persistence.existingClaim }}
{{- end }}

{{/* The label that lets a pod in the namespace reach the gateways through the NetworkPolicy. */}}
{{- define "nexflow.clientLabel" -}}
{{- printf "%s-client" (include "nexflow.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
config.yml: .Values.config with the bind address and the host names the gateway answers
(the Service's, and the Ingress hosts) merged in.
*/}}
{{- define "nexflow.configYaml" -}}
{{- $config := deepCopy .Values.config }}
{{- $web := get $config "web" | default dict }}
{{- $gateway := include "nexflow.componentName" (dict "ctx" . "component" "gateway") }}
{{- $hosts := list $gateway (printf "%s.%s" $gateway .Release.Namespace) (printf "%s.%s.svc" $gateway .Release.Namespace) (printf "%s.%s.svc.cluster.local" $gateway .Release.Namespace) }}
{{- if .Values.ingress.enabled }}
{{- range .Values.ingress.hosts }}
{{- $hosts = append $hosts .host }}
{{- end }}
{{- end }}
{{- $_ := set $web "host" "0.0.0.0" }}
{{- $_ := set $web "port" (int .Values.gateway.port) }}
{{- $_ := set $web "public_hosts" (concat (get $web "public_hosts" | default list) $hosts | uniq) }}
{{- $_ := set $config "web" $web }}
{{- toYaml $config }}
{{- end }}

{{/*
Environment shared by gateways and workers. The storage URL and the gateway token are
required keys (a pod without them does not start, rather than falling back to SQLite on
scratch space); Redis is optional.
*/}}
{{- define "nexflow.env" -}}
- name: NEXFLOW_HOME
  value: /data
- name: NEXFLOW_CONFIG
  value: /etc/nexflow/config.yml
- name: NEXFLOW_WORKSPACES__ROOT
  value: {{ .Values.workspaces.mountPath | quote }}
- name: NEXFLOW_FLOWS__EXECUTOR_ID
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
{{- if gt (int .Values.worker.replicas) 0 }}
# Gateways enqueue flow runs, the workers run them (docs/scale-out.md, "Workers").
- name: NEXFLOW_FLOWS__RUN_ON
  value: workers
{{- end }}
- name: NEXFLOW_GATEWAY_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ include "nexflow.secretName" . }}
      key: NEXFLOW_GATEWAY_TOKEN
{{- if .Values.postgresql.bundled }}
- name: NEXFLOW_POSTGRES_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "nexflow.secretName" . }}
      key: POSTGRES_PASSWORD
- name: NEXFLOW_STORAGE__URL
  value: {{ printf "postgresql://%s:$(NEXFLOW_POSTGRES_PASSWORD)@%s:5432/%s" .Values.postgresql.username (include "nexflow.componentName" (dict "ctx" . "component" "postgresql")) .Values.postgresql.database | quote }}
{{- else }}
- name: NEXFLOW_STORAGE__URL
  valueFrom:
    secretKeyRef:
      name: {{ include "nexflow.secretName" . }}
      key: NEXFLOW_STORAGE__URL
{{- end }}
{{- if .Values.redis.bundled }}
- name: NEXFLOW_REDIS__URL
  value: {{ printf "redis://%s:6379/0" (include "nexflow.componentName" (dict "ctx" . "component" "redis")) | quote }}
{{- else }}
- name: NEXFLOW_REDIS__URL
  valueFrom:
    secretKeyRef:
      name: {{ include "nexflow.secretName" . }}
      key: NEXFLOW_REDIS__URL
      optional: true
{{- end }}
- name: NEXFLOW_FLOWS__DATABASE_URL
  value: $(NEXFLOW_STORAGE__URL)
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Volumes shared by gateways and workers (NEXFLOW_HOME scratch, /tmp, config, workspaces). */}}
{{- define "nexflow.volumes" -}}
- name: home
  emptyDir:
    sizeLimit: {{ .homeSizeLimit }}
- name: tmp
  emptyDir: {}
- name: config
  configMap:
    name: {{ include "nexflow.fullname" .ctx }}
- name: workspaces
{{- if .ctx.Values.workspaces.persistence.enabled }}
  persistentVolumeClaim:
    claimName: {{ include "nexflow.workspacesClaim" .ctx }}
{{- else }}
  emptyDir: {}
{{- end }}
{{- end }}

{{- define "nexflow.volumeMounts" -}}
- name: home
  mountPath: /data
- name: tmp
  mountPath: /tmp
- name: config
  mountPath: /etc/nexflow
  readOnly: true
- name: workspaces
  mountPath: {{ .Values.workspaces.mountPath }}
{{- end }}
