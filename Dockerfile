# runsheet for pipeline steps (Harness Shell Script / Run steps, GitLab, Jenkins):
# a static musl binary on a small Alpine base with the OpenSSH client (the ssh
# transport runs `ssh`) and CA certificates.
#
#   docker build -t runsheet:0.1.0 .
#   docker run --rm -v "$PWD:/work" -w /work runsheet:0.1.0 validate playbooks/*.yaml
#
# See docs/install.md.

FROM rust:1.95-alpine AS build
RUN apk add --no-cache build-base
WORKDIR /src
COPY . .
RUN cargo build --profile dist --locked --bin runsheet \
 && install -m 0755 target/dist/runsheet /usr/local/bin/runsheet \
 && runsheet --version

FROM alpine:3.22
RUN apk add --no-cache openssh-client ca-certificates tzdata \
 && adduser -D -u 10001 runsheet
COPY --from=build /usr/local/bin/runsheet /usr/local/bin/runsheet
USER runsheet
WORKDIR /work
ENTRYPOINT ["runsheet"]
CMD ["--help"]
