FROM busybox
COPY --chown=1:1 \
     --chmod=600 \
     a /a
