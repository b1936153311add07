FROM --platform=linux/arm64 alpine AS build-arm64
RUN true
