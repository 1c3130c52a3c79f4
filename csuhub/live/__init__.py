"""Live video: one upstream per camera stream, fanned out to browsers as
fragmented MP4 over WebSocket."""
