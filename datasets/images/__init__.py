"""The image wing of ``datasets``: what the ``latents`` targets (:mod:`datasets.latents`)
are built from.

* :mod:`datasets.images.readers`: digits / MNIST / Fashion-MNIST / CIFAR-10 readers
  (IDX and CIFAR pickle parsers, offline search, torchvision download) giving an
  :class:`~datasets.images.readers.ImageDataset` (uint8 ``(n, C, H, W)``, labels ``(n,)``);
* :mod:`datasets.images.autoencoders`: the MLP / CNN autoencoders and their seeded training;
* :mod:`datasets.images.model_cache`: the checksummed, atomic on-disk cache of trained modules;
* :mod:`datasets.images.diagnostics`: class coverage, image grids and diffusion maps.

No module here registers a target.
"""
