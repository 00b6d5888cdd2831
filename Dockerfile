# Builds the hub-operator image: a static binary on an empty base, non-root.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY api/ api/
COPY clusterregistry/ clusterregistry/
COPY cmd/ cmd/
COPY hub/ hub/
COPY member/ member/
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /hub-operator ./cmd/hub-operator

FROM scratch
COPY --from=build /hub-operator /hub-operator
USER 65532:65532
ENTRYPOINT ["/hub-operator"]
