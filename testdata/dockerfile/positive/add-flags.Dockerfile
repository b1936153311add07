FROM busybox
ADD --checksum=sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb --chown=1:1 --chmod=644 https://example.com/f /f
ADD --keep-git-dir=true https://github.com/a/b.git /src
ADD --unpack=false a.tar /x
