# moni %pre: the system user and group, before the files that name them.
getent group moni >/dev/null || groupadd -r moni
getent passwd moni >/dev/null || \
    useradd -r -g moni -d /var/lib/moni -M -s /sbin/nologin -c "moni metrics daemon" moni
exit 0
