ARG IMG
FROM ${IMG:?pass --build-arg IMG}
