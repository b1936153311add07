mkdir -p stage/d && printf a > stage/d/a
tar --numeric-owner --owner=777 --group=888 -cf owned.tar -C stage d
rm -rf stage
