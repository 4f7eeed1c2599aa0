# syntax=docker/dockerfile:1.7
#
# SMEDREC Audit server image. One image runs every role: the API (`AUDIT_ROLE=api`), the worker
# (`AUDIT_ROLE=worker`), migrations (`AUDIT_ROLE=migrate`) and the admin CLI
# (`node server/dist/cli/admin.js …`).
#
#   base      node:22-alpine + security updates + tini + the unprivileged user 1001
#   deps      all dependencies (npm cache mount), used by `build` and by the compose dev target `dev`
#   build     tsc → server/dist
#   prod-deps production dependencies of the server workspace only
#   runner    the image that ships: dist + migrations + production node_modules, USER 1001
#
# The runner writes nothing outside /tmp, so it runs with a read-only root filesystem
# (`docker run --read-only --tmpfs /tmp`, compose `read_only: true`, Kubernetes
# `readOnlyRootFilesystem: true`); every file it ships is owned by root and not writable by 1001.

# Pinned to the Node 22 line on Alpine; bump deliberately (never `latest`).
ARG NODE_IMAGE=node:22-alpine3.22

FROM ${NODE_IMAGE} AS base
# Security updates for the Alpine packages baked into the upstream image; tini as PID 1 forwards
# SIGTERM/SIGINT to Node and reaps zombies (a process with PID 1 gets no default signal handlers).
RUN apk upgrade --no-cache \
 && apk add --no-cache tini \
 && addgroup -S -g 1001 audit \
 && adduser -S -D -H -u 1001 -G audit -s /sbin/nologin -h /tmp audit
WORKDIR /app
ENV NPM_CONFIG_UPDATE_NOTIFIER=false \
    NPM_CONFIG_FUND=false \
    NPM_CONFIG_AUDIT=false

FROM base AS deps
# Only the manifests npm needs to resolve the workspace graph, so source edits keep this layer cached.
COPY package.json package-lock.json ./
COPY server/package.json server/package.json
COPY manifests/package.json manifests/package.json
RUN --mount=type=cache,target=/root/.npm,sharing=locked \
    npm ci --workspace server --include-workspace-root --ignore-scripts

# Development target for compose/docker-compose.yml: sources are bind-mounted read-only and
# `node --watch` restarts the server on change.
FROM deps AS dev
COPY tsconfig.json ./
COPY server/tsconfig.json server/tsconfig.build.json server/
ENV NODE_ENV=development \
    AUDIT_DATA_DIR=/tmp/audit-data
USER 1001:1001
EXPOSE 3000
ENTRYPOINT ["/sbin/tini", "--"]
CMD ["node", "--watch-path=server/src", "--import", "tsx", "server/src/main.ts"]

FROM deps AS build
COPY tsconfig.json ./
COPY server/tsconfig.json server/tsconfig.build.json server/
COPY server/src server/src
RUN npm run build -w server

FROM base AS prod-deps
COPY package.json package-lock.json ./
COPY server/package.json server/package.json
COPY manifests/package.json manifests/package.json
RUN --mount=type=cache,target=/root/.npm,sharing=locked \
    npm ci --workspace server --omit=dev --ignore-scripts

FROM base AS runner
ARG NODE_IMAGE
ARG VERSION=0.0.0-dev
ARG REVISION=unknown
ARG CREATED=unknown
ARG SOURCE_URL=
# OCI image annotations (opencontainers image-spec, annotations.md "Pre-Defined Annotation Keys").
LABEL org.opencontainers.image.title="smedrec-audit-server" \
      org.opencontainers.image.description="Verifiable audit-log server (Express + tRPC) with signed Merkle checkpoints" \
      org.opencontainers.image.vendor="SMEDREC" \
      org.opencontainers.image.licenses="UNLICENSED" \
      org.opencontainers.image.source="${SOURCE_URL}" \
      org.opencontainers.image.base.name="${NODE_IMAGE}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}"
# npm, npx, corepack and yarn are not needed at run time: drop them to shrink the attack surface.
RUN rm -rf /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/corepack \
           /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack /opt/yarn-*
ENV NODE_ENV=production \
    PORT=3000 \
    HOST=0.0.0.0 \
    AUDIT_DATA_DIR=/tmp/audit-data \
    HOME=/tmp
# Everything below stays owned by root: uid 1001 can read and execute, never modify.
COPY --from=prod-deps /app/node_modules ./node_modules
COPY --from=prod-deps /app/package.json ./package.json
COPY server/package.json server/package.json
COPY server/migrations server/migrations
COPY --from=build /app/server/dist server/dist
USER 1001:1001
EXPOSE 3000
# Liveness only (/health); readiness (/ready) is for load balancers and Kubernetes probes.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
STOPSIGNAL SIGTERM
# Exec form: tini is PID 1 and Node its direct child, so SIGTERM reaches Node's graceful shutdown.
ENTRYPOINT ["/sbin/tini", "--"]
CMD ["node", "server/dist/main.js"]
