# syntax=docker/dockerfile:1.7
FROM busybox
