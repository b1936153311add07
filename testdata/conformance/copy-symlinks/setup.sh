cd links
ln -s target.txt rel-link
ln -s /etc/passwd abs-link
ln -s does-not-exist dangling
ln -s realdir dir-link
ln -s ../links/target.txt updown
