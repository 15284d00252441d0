// Package deploy holds no code: its tests hold the Dockerfile, .dockerignore,
// docker-compose.yml, the GitHub workflows, dependabot.yml and the .ci/
// scripts to the binaries and tests they serve, so a renamed variable,
// command, port or test program fails `go test` instead of a deploy or a
// fork's first push. They need no Docker daemon and no services; the lint
// test builds the pinned actionlint through the Go module proxy and installs
// shellcheck with apt when it is missing.
package deploy
