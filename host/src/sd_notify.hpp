// systemd's readiness protocol (Type=notify): a datagram to $NOTIFY_SOCKET.
#pragma once

namespace moni::host {

/// Sends e.g. "READY=1"; does nothing when NOTIFY_SOCKET is unset.
/// Thread-safety: any thread.
void sd_notify_state(const char* state);

}  // namespace moni::host
