ARG VERSION=3
FROM alpine:${VERSION}
FROM alpine:$VERISON
FROM alpine:${version}
FROM --platform=$BUILDPLATFORM alpine
