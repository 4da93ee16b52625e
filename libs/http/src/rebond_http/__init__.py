"""HTTP plumbing the services with public pages share: abuse guard and security headers."""
