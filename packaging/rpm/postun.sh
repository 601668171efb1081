# moni %postun: restart on upgrade. Erasing keeps /var/lib/moni and the
# moni user (RPM has no purge; remove them by hand, see docs/install.md).
if [ -d /run/systemd/system ]; then
    systemctl --system daemon-reload >/dev/null 2>&1 || :
    if [ "$1" -ge 1 ]; then
        systemctl try-restart moni.service >/dev/null 2>&1 || :
    fi
fi
exit 0
