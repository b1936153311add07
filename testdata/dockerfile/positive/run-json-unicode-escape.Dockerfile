FROM busybox
RUN ["echo", "caf\u00e9", "tab\there"]
