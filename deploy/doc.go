// Package deploy holds no code: its tests hold the Dockerfile, .dockerignore,
// docker-compose.yml and the GitHub workflows to the binaries they ship, so a
// renamed variable, command or port fails `go test` instead of a deploy.
// They need no Docker daemon and no services.
package deploy
