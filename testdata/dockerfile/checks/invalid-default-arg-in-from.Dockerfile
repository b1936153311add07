ARG TAG
ARG IMAGE=alpine
FROM alpine:${TAG}
FROM ${IMAGE}
FROM ${IMAGE}:${TAG:-latest}
