# moni %post: the data directory; on first install, the unit's preset
# (enabled or not is the distribution's policy); daemon-reload on upgrade.
install -d -o moni -g moni -m 0750 /var/lib/moni
if [ -d /run/systemd/system ]; then
    systemctl --system daemon-reload >/dev/null 2>&1 || :
fi
if [ "$1" -eq 1 ] && [ -x /usr/bin/systemctl ]; then
    systemctl --no-reload preset moni.service >/dev/null 2>&1 || :
fi
exit 0
