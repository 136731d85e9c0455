-- Whether a version only reads (every step's tool read-only, no human step), kept with the version: a
-- pipeline tool's annotations, and whether a read-scope key may call it, are the served version's, not
-- those of a newer draft (the pipeline row's read_only follows the latest version saved). Versions saved
-- before this migration fall back to the row's value; the latest one is filled in from it now.
ALTER TABLE pipeline_version ADD COLUMN read_only boolean;
UPDATE pipeline_version v SET read_only = p.read_only FROM pipeline p WHERE v.name = p.name AND v.version = p.version;
