#!/bin/sh
# A tiny "compiler": assembles bin/greet from the module sources, strips comments, stamps a checksum.
set -eu
out=$1
mkdir -p "$out/bin" "$out/lib/greet"
{
  echo '#!/bin/sh'
  for m in modules/*.sh; do sed -e '/^[[:space:]]*#/d' -e '/^$/d' "$m"; done
  echo 'main "$@"'
} > "$out/bin/greet"
chmod 0755 "$out/bin/greet"
sha256sum "$out/bin/greet" | awk '{print $1}' > "$out/lib/greet/checksum"
echo "built $(wc -l < "$out/bin/greet") lines"
