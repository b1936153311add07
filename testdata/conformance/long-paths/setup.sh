d=.
for i in 1 2 3 4 5 6 7 8 9 10; do d=$d/a-fairly-long-directory-name-number-$i; done
mkdir -p "$d"
printf 'deep file' > "$d/the-file-at-the-bottom-of-a-long-path.txt"
n=$(printf 'n%.0s' $(seq 1 255))
printf 'name of 255 bytes' > "$n"
ln -s "$d/the-file-at-the-bottom-of-a-long-path.txt" "link-with-a-long-target"
