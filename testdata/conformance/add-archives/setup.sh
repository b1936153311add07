mkdir -p stage/dir/sub
printf 'one' > stage/dir/one
printf 'two' > stage/dir/sub/two
ln -s one stage/dir/link
ln stage/dir/one stage/dir/hard
chmod 0750 stage/dir/sub
chmod 4755 stage/dir/sub/two
tar --numeric-owner --owner=1234 --group=4321 -cf plain.tar -C stage dir
tar --numeric-owner --owner=0 --group=0 -czf gz.tar.gz -C stage dir
tar --numeric-owner --owner=0 --group=0 -cjf bz.tar.bz2 -C stage dir
tar --numeric-owner --owner=0 --group=0 -cJf xz.tar.xz -C stage dir
printf 'not a tar' | gzip -n > notatar.gz
rm -rf stage
