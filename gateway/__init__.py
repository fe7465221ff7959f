"""Self-hosted voice gateway: FreeSWITCH call control, media bridge and REST APIs."""
