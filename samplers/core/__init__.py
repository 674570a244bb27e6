"""Shared sampler maths, no methods: the methods are the modules one level up in ``samplers/``.

spectral       diffusion-map kernel, its spectrum, LAWGD weights, the transport step
edmd           EDMD / Koopman spectra from Langevin pairs, transport modes
transport_run  the particle loop of the spectral-transport methods (DMPS, EDMD-KSWGD)
scores         score sources: the target's own or a KDE of the training split
stein_kernels  radial base kernels, Stein kernel, KSD^2 and its partials
riesz_mmd      Riesz-kernel MMD^2 and its exact and sliced particle gradients
sinkhorn_loss  log-domain entropic OT and the debiased Sinkhorn divergence
neural_nets    seeded MLPs, whitening, Adam, learning-rate schedule, parameter checks

Nothing here registers a sampler; importing this package imports none of its modules.
"""
