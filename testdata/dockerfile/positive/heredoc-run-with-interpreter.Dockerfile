FROM busybox
RUN <<EOT sh -ex
set -u
ls
EOT
