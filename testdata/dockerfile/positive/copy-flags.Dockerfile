FROM busybox
COPY --chown=app:app --chmod=0755 --link a /a
