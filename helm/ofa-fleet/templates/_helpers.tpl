{{/* Names: <release>-ofa-fleet, or fullnameOverride; 63 characters at most. */}}
{{- define "ofa-fleet.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "ofa-fleet.fullname" -}}
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

{{/* A component's name: <fullname>-registry; the fullname leaves room for the suffix. */}}
{{- define "ofa-fleet.component" -}}
{{- printf "%s-%s" (include "ofa-fleet.fullname" .root | trunc 52 | trimSuffix "-") .component }}
{{- end }}

{{- define "ofa-fleet.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "ofa-fleet.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: ofa-fleet
{{- end }}

{{- define "ofa-fleet.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ofa-fleet.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels of one component: call with (dict "root" $ "component" "registry"). */}}
{{- define "ofa-fleet.componentLabels" -}}
{{ include "ofa-fleet.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "ofa-fleet.componentSelectorLabels" -}}
{{ include "ofa-fleet.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* By digest when one is given: a tag can be moved to other bytes, a digest cannot. */}}
{{- define "ofa-fleet.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The slim image of registry, delivery and the migrations (no torch or Ray). */}}
{{- define "ofa-fleet.servicesImage" -}}
{{- $services := .Values.image.services }}
{{- if $services.digest }}
{{- printf "%s@%s" $services.repository $services.digest }}
{{- else }}
{{- printf "%s:%s" $services.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{- define "ofa-fleet.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "ofa-fleet.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "ofa-fleet.operatorTokenSecret" -}}
{{- default (include "ofa-fleet.component" (dict "root" . "component" "operator-token")) .Values.operatorToken.existingSecret }}
{{- end }}

{{- define "ofa-fleet.databaseSecret" -}}
{{- default (include "ofa-fleet.component" (dict "root" . "component" "database")) .Values.database.existingSecret }}
{{- end }}

{{- define "ofa-fleet.signingKeySecret" -}}
{{- default (include "ofa-fleet.component" (dict "root" . "component" "signing-key")) .Values.signingKey.existingSecret }}
{{- end }}

{{/*
What an existing Secret (one the chart does not render) holds, for a pod's checksum: its
name, and its data where the cluster can be asked (helm install/upgrade; `helm template`
cannot). Rotating such a Secret under a new name therefore always rolls the pods that copy
it at start; changing it in place does at the next upgrade run against the cluster.
*/}}
{{- define "ofa-fleet.existingSecretDigest" -}}
{{- $secret := lookup "v1" "Secret" .root.Release.Namespace .name -}}
{{- printf "%s:%s" .name (($secret).data | default dict | toJson) -}}
{{- end }}

{{/* Checksum of the operator token every server reads at start. */}}
{{- define "ofa-fleet.operatorTokenChecksum" -}}
{{- $token := .Values.operatorToken -}}
{{- if $token.existingSecret -}}
{{- include "ofa-fleet.existingSecretDigest" (dict "root" . "name" $token.existingSecret) | sha256sum -}}
{{- else if $token.value -}}
{{- $token.value | sha256sum -}}
{{- else -}}
{{- /* Generated once and never changed: its name stands for it. */ -}}
{{- include "ofa-fleet.operatorTokenSecret" . | sha256sum -}}
{{- end -}}
{{- end }}

{{/*
The key files delivery's pods copy out of Secrets (see delivery.yaml): the signing key,
then each retired key of a rotation. A YAML list of {container, volume, secret, key, file}.
*/}}
{{- define "ofa-fleet.signingKeyCopies" -}}
- container: signing-key
  volume: signing-key-secret
  secret: {{ include "ofa-fleet.signingKeySecret" . }}
  key: {{ .Values.signingKey.key }}
  file: signing.key
{{- range $index, $retired := .Values.signingKey.retired }}
- container: retired-signing-key-{{ $index }}
  volume: retired-signing-key-{{ $index }}
  secret: {{ $retired.existingSecret }}
  key: {{ $retired.key | default "signing.key" }}
  file: retired-{{ $index }}.key
{{- end }}
{{- end }}

{{/* Checksum of the signing key and the retired keys delivery copies at start: every
replica must sign with the same key, so a new one rolls them all. */}}
{{- define "ofa-fleet.signingKeyChecksum" -}}
{{- $parts := list -}}
{{- if .Values.signingKey.existingSecret -}}
{{- $parts = append $parts (include "ofa-fleet.existingSecretDigest" (dict "root" . "name" .Values.signingKey.existingSecret)) -}}
{{- else -}}
{{- $parts = append $parts (include "ofa-fleet.signingKeySecret" .) -}}
{{- end -}}
{{- range .Values.signingKey.retired -}}
{{- $parts = append $parts (include "ofa-fleet.existingSecretDigest" (dict "root" $ "name" .existingSecret)) -}}
{{- end -}}
{{- join "\n" $parts | sha256sum -}}
{{- end }}

{{/* Checksum of the Ray token search joins its RayCluster with. */}}
{{- define "ofa-fleet.rayAuthChecksum" -}}
{{- if .Values.rayAuth.existingSecret -}}
{{- include "ofa-fleet.existingSecretDigest" (dict "root" . "name" .Values.rayAuth.existingSecret) | sha256sum -}}
{{- else -}}
{{- /* Generated once and never changed: its name stands for it. */ -}}
{{- include "ofa-fleet.rayAuthSecret" . | sha256sum -}}
{{- end -}}
{{- end }}

{{/* Checksum of the database URLs a server reads at start. */}}
{{- define "ofa-fleet.databaseChecksum" -}}
{{- if .Values.database.existingSecret -}}
{{- include "ofa-fleet.existingSecretDigest" (dict "root" . "name" .Values.database.existingSecret) | sha256sum -}}
{{- else -}}
{{- include (print .Template.BasePath "/secret-database.yaml") . | sha256sum -}}
{{- end -}}
{{- end }}

{{- define "ofa-fleet.rayAuthSecret" -}}
{{- default (include "ofa-fleet.component" (dict "root" . "component" "ray-auth")) .Values.rayAuth.existingSecret }}
{{- end }}

{{/* Ray token authentication for a Ray node or client: every node of a cluster and every
driver that joins it hold the same token (Ray 2.52 and later). Nothing when disabled. */}}
{{- define "ofa-fleet.rayAuthEnv" -}}
{{- if .Values.rayAuth.enabled }}
- name: RAY_AUTH_MODE
  value: token
- name: RAY_AUTH_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ include "ofa-fleet.rayAuthSecret" . }}
      key: {{ .Values.rayAuth.key }}
{{- end }}
{{- end }}

{{/* The operator token from its Secret: every server checks operator calls against it. */}}
{{- define "ofa-fleet.operatorTokenEnv" -}}
- name: OFA_FLEET_OPERATOR_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ include "ofa-fleet.operatorTokenSecret" . }}
      key: {{ .Values.operatorToken.key }}
{{- end }}

{{/* Who a pod runs as: service account, pull secrets, security context. */}}
{{- define "ofa-fleet.podIdentity" -}}
{{ include "ofa-fleet.podIdentityAs" (dict "root" . "account" (include "ofa-fleet.serviceAccountName" .)) }}
{{- end }}

{{/* The same as another service account: (dict "root" $ "account" NAME). */}}
{{- define "ofa-fleet.podIdentityAs" -}}
serviceAccountName: {{ .account }}
automountServiceAccountToken: false
{{- with .root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .root.Values.podSecurityContext | nindent 2 }}
{{- end }}

{{/* Common pod settings: service account, pull secrets, security context, scheduling. */}}
{{- define "ofa-fleet.podSpec" -}}
{{ include "ofa-fleet.podSpecAs" (dict "root" . "account" (include "ofa-fleet.serviceAccountName" .)) }}
{{- end }}

{{/* The same as another service account: (dict "root" $ "account" NAME). */}}
{{- define "ofa-fleet.podSpecAs" -}}
{{ include "ofa-fleet.podIdentityAs" . }}
{{- with .root.Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .root.Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .root.Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* gRPC probes (grpc.health.v1): readiness asks for the server's own service. */}}
{{- define "ofa-fleet.probes" -}}
{{- $probes := .root.Values.probes }}
startupProbe:
  grpc:
    port: {{ .port }}
  periodSeconds: {{ $probes.startup.periodSeconds }}
  timeoutSeconds: {{ $probes.startup.timeoutSeconds }}
  failureThreshold: {{ $probes.startup.failureThreshold }}
readinessProbe:
  grpc:
    port: {{ .port }}
    service: {{ .service }}
  periodSeconds: {{ $probes.readiness.periodSeconds }}
  timeoutSeconds: {{ $probes.readiness.timeoutSeconds }}
  failureThreshold: {{ $probes.readiness.failureThreshold }}
livenessProbe:
  grpc:
    port: {{ .port }}
    service: ofa_fleet.Liveness
  periodSeconds: {{ $probes.liveness.periodSeconds }}
  timeoutSeconds: {{ $probes.liveness.timeoutSeconds }}
  failureThreshold: {{ $probes.liveness.failureThreshold }}
{{- end }}

{{/* The ports a server container listens on; grpc-internal beside a TLS grpc. */}}
{{- define "ofa-fleet.ports" -}}
ports:
  - name: grpc
    containerPort: {{ .port }}
    protocol: TCP
  {{- if .internalPort }}
  - name: grpc-internal
    containerPort: {{ .internalPort }}
    protocol: TCP
  {{- end }}
  {{- if .root.Values.metrics.enabled }}
  - name: metrics
    containerPort: {{ .metricsPort }}
    protocol: TCP
  {{- end }}
{{- end }}

{{/* Flags every server takes: listen on the pod's addresses, metrics, logs. With
`.internalPort` (registry and delivery under tls.enabled) --port serves TLS from the
mounted certificate, and the internal port plaintext for the cluster's own callers and
the probes; otherwise --port is plaintext, for callers inside the cluster (and an ingress
or gateway that encrypts outside it). */}}
{{- define "ofa-fleet.serverArgs" -}}
- --host=0.0.0.0
- --port={{ .port }}
{{- if .internalPort }}
- --tls-cert={{ include "ofa-fleet.tlsDir" . }}/tls.crt
- --tls-key={{ include "ofa-fleet.tlsDir" . }}/tls.key
{{- if .root.Values.tls.clientCA.enabled }}
- --tls-client-ca={{ include "ofa-fleet.clientCADir" . }}/{{ .root.Values.tls.clientCA.key }}
{{- end }}
- --plaintext-port={{ .internalPort }}
{{- end }}
- --allow-plaintext
{{- if .root.Values.metrics.enabled }}
- --metrics-port={{ .metricsPort }}
{{- end }}
- --log-level={{ .logLevel }}
- --max-connection-age-seconds={{ .root.Values.connections.maxAgeSeconds }}
{{- if not .ownStreamGrace }}
- --max-connection-age-grace-seconds={{ .root.Values.connections.maxAgeGraceSeconds }}
{{- end }}
{{- end }}

{{/* The plaintext port of registry or delivery for the cluster's own callers and the
probes when tls.enabled (their grpc port then serves TLS); nothing otherwise. */}}
{{- define "ofa-fleet.internalPort" -}}
{{- if .root.Values.tls.enabled }}{{ .server.internalPort }}{{ end }}
{{- end }}

{{/* Where a pod's callers inside the cluster reach the registry. */}}
{{- define "ofa-fleet.registryAddress" -}}
{{- $registry := .Values.registry }}
{{- printf "%s:%v" (include "ofa-fleet.component" (dict "root" . "component" "registry")) (ternary $registry.internalPort $registry.port .Values.tls.enabled) }}
{{- end }}

{{- define "ofa-fleet.tlsDir" -}}/var/run/ofa-fleet/tls{{- end }}
{{- define "ofa-fleet.clientCADir" -}}/var/run/ofa-fleet/client-ca{{- end }}

{{/* The certificate (a kubernetes.io/tls Secret, as cert-manager writes it) and the
client CA of a TLS server: its mounts, then its volumes. Nothing without tls.enabled. */}}
{{- define "ofa-fleet.tlsMounts" -}}
{{- if .Values.tls.enabled }}
- name: tls
  mountPath: {{ include "ofa-fleet.tlsDir" . }}
  readOnly: true
{{- if .Values.tls.clientCA.enabled }}
- name: client-ca
  mountPath: {{ include "ofa-fleet.clientCADir" . }}
  readOnly: true
{{- end }}
{{- end }}
{{- end }}

{{- define "ofa-fleet.tlsVolumes" -}}
{{- $tls := .Values.tls }}
{{- if $tls.enabled }}
- name: tls
  secret:
    secretName: {{ $tls.existingSecret }}
    defaultMode: 0440
    items:
      - key: tls.crt
        path: tls.crt
      - key: tls.key
        path: tls.key
{{- if $tls.clientCA.enabled }}
- name: client-ca
  secret:
    secretName: {{ $tls.clientCA.existingSecret | default $tls.existingSecret }}
    defaultMode: 0444
    items:
      - key: {{ $tls.clientCA.key }}
        path: {{ $tls.clientCA.key }}
{{- end }}
{{- end }}
{{- end }}

{{- define "ofa-fleet.tmpVolume" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.tmpSizeLimit }}
{{- end }}

{{/* The claim the training job writes checkpoints to: the user's, or the chart's own. */}}
{{- define "ofa-fleet.trainingClaim" -}}
{{- .Values.training.checkpoint.existingClaim | default (include "ofa-fleet.component" (dict "root" . "component" "training")) }}
{{- end }}

{{/* The claim search reads its checkpoint from: its own setting, else training's, else
none (the checkpoint is a file in the image). */}}
{{- define "ofa-fleet.searchCheckpointClaim" -}}
{{- if .Values.search.checkpoint.existingClaim }}
{{- .Values.search.checkpoint.existingClaim }}
{{- else if .Values.training.enabled }}
{{- include "ofa-fleet.trainingClaim" . }}
{{- end }}
{{- end }}

{{/* Where a training pod (head or worker) sees the data, the checkpoints, /tmp, /dev/shm. */}}
{{- define "ofa-fleet.trainingMounts" -}}
- name: tmp
  mountPath: /tmp
- name: shm
  mountPath: /dev/shm
- name: data
  mountPath: {{ .Values.training.data.mountPath }}
  readOnly: true
- name: checkpoint
  mountPath: {{ .Values.search.checkpoint.mountPath }}
{{- end }}

{{- define "ofa-fleet.trainingVolumes" -}}
{{- $training := .root.Values.training }}
{{- include "ofa-fleet.tmpVolume" .root }}
- name: shm
  emptyDir:
    medium: Memory
    sizeLimit: {{ $training.shmSizeLimit }}
- name: data
  persistentVolumeClaim:
    claimName: {{ $training.data.existingClaim }}
    readOnly: true
- name: checkpoint
  persistentVolumeClaim:
    claimName: {{ .claim }}
{{- end }}

{{/*
The alerting and recording rules (files/rules.yml, a copy of deploy/prometheus/rules.yml),
their runbook links pointed at metrics.runbookBaseUrl when one is set.
*/}}
{{- define "ofa-fleet.rules" -}}
{{- $rules := .Files.Get "files/rules.yml" -}}
{{- with .Values.metrics.runbookBaseUrl -}}
{{- $rules = replace "runbook_url: \"deploy/RUNBOOKS.md#" (printf "runbook_url: \"%s#" .) $rules -}}
{{- end -}}
{{- $rules -}}
{{- end -}}

{{/*
The Secret the migration Job reads its URLs from: migrations.job.existingSecret; else the
chart's own hook Secret when migration URLs are given, or when the servers' URLs come
from values (the servers' Secret does not exist yet before an install); else the
servers' existing Secret (its URLs then migrate too).
*/}}
{{- define "ofa-fleet.migrationSecret" -}}
{{- $job := .Values.migrations.job -}}
{{- if $job.existingSecret -}}
{{- $job.existingSecret -}}
{{- else if or $job.registryUrl $job.deliveryUrl (not .Values.database.existingSecret) -}}
{{- include "ofa-fleet.component" (dict "root" . "component" "migrations") -}}
{{- else -}}
{{- .Values.database.existingSecret -}}
{{- end -}}
{{- end }}

{{/* --migrations=check where the chart's Job migrates: the servers need no DDL rights. */}}
{{- define "ofa-fleet.migrationsArg" -}}
{{- if .Values.migrations.job.enabled }}
- --migrations=check
{{- end }}
{{- end }}
