//! The Edge configuration (TOML): identity, certificates, trust, federation policy, users, DNS zones, limits.
