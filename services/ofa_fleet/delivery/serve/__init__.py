"""The device-facing and operator-facing delivery service: the servicer, who may call
what, device authentication, model watches, chunked downloads and pinning."""
