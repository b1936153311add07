chmod 0755 exec.sh
chmod 0600 plain
chmod 0711 dir
printf 'sticky' > sticky; chmod 1644 sticky
printf 'suid' > suid; chmod 4755 suid
printf 'sgid' > sgid; chmod 2755 sgid
mkdir -m 0700 private && printf p > private/p && chmod 0400 private/p
chown 1234:5678 plain
mkdir empty-dir && chmod 0750 empty-dir
