"""Video quality: moving-shapes statistics (`shapes`), reduced precision against FP32 on
identical noise (`precision`), and plots (`plot`). FVD: the Fréchet distance (`fvd`) on features
from the shipped offline extractor (`features`) or the user's I3D detector (`i3d`), of video sets
read by `videos`, reported by `report`; `degrade` and `sensitivity` measure what it responds to."""
