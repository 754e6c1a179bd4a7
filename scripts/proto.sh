#!/bin/sh
# Regenerates the Go code of the gRPC contract in proto/ with pinned tools.
# Needs protoc (Debian: protobuf-compiler).
set -eu
cd "$(dirname "$0")/.."
PROTOC_GEN_GO=v1.36.12
PROTOC_GEN_GO_GRPC=v1.5.1
BIN="$(go env GOPATH)/bin"
go install "google.golang.org/protobuf/cmd/protoc-gen-go@${PROTOC_GEN_GO}"
go install "google.golang.org/grpc/cmd/protoc-gen-go-grpc@${PROTOC_GEN_GO_GRPC}"
PATH="$BIN:$PATH" protoc -I proto \
	--go_out=. --go_opt=module=github.com/capuchin/capuchin \
	--go-grpc_out=. --go-grpc_opt=module=github.com/capuchin/capuchin \
	proto/capuchin/v1/plugin.proto
