FROM busybox
COPY --parents ./x/**/*.go /src/
