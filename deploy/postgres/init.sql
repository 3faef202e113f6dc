-- Runs once, when the compose stack's PostgreSQL volume is new: one database per service
-- (each runs its own migrations on start), owned by the stack's user.
CREATE DATABASE ofa_fleet_registry OWNER ofa;
CREATE DATABASE ofa_fleet_delivery OWNER ofa;
