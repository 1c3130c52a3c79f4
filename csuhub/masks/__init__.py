"""Privacy masks (CSI L251-3: no views into private homes), applied on the server.

* ``model``: what a mask is, and the parser of masks drawn through the API;
* ``raster``: the masks as an image at the video's resolution (cached);
* ``ffmpeg``: the filter graph painting the masked pixels, and the commands
  using it (export re-encode, frame, snapshot, live transcode);
* ``apply``: masking a snapshot or a timeline frame, failing closed;
* ``policy``: a camera's effective masks and whether a lift is in force;
* ``lifts``: dual control (request, approve or refuse, expiry, end).

``docs/masks.md`` is the reference.
"""
