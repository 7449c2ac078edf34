-- Item names (and paths of plain files) in one canonical form, so a name round-trips
-- however a client encodes it: percent-escapes decoded, then every byte but
-- unreserved characters and `@ ! $ & ' ( ) * + , ; = :` escaped again in upper-case
-- hex (davproto/src/path.rs, `canonical`, does the same for every request).
CREATE FUNCTION postern_canonical_segment(seg text) RETURNS text AS $$
DECLARE
    raw bytea := '';
    i int := 1;
    n int := length(seg);
    c text;
    out text := '';
    b int;
BEGIN
    WHILE i <= n LOOP
        c := substr(seg, i, 1);
        IF c = '%' AND i + 2 <= n AND substr(seg, i + 1, 2) ~ '^[0-9A-Fa-f]{2}$' THEN
            raw := raw || decode(substr(seg, i + 1, 2), 'hex');
            i := i + 3;
        ELSE
            raw := raw || convert_to(c, 'UTF8');
            i := i + 1;
        END IF;
    END LOOP;
    FOR i IN 0 .. length(raw) - 1 LOOP
        b := get_byte(raw, i);
        IF (b BETWEEN 48 AND 57) OR (b BETWEEN 65 AND 90) OR (b BETWEEN 97 AND 122)
           OR b IN (45, 46, 95, 126, 64, 33, 36, 38, 39, 40, 41, 42, 43, 44, 59, 61, 58) THEN
            out := out || chr(b);
        ELSE
            out := out || '%' || upper(lpad(to_hex(b), 2, '0'));
        END IF;
    END LOOP;
    RETURN out;
END
$$ LANGUAGE plpgsql IMMUTABLE STRICT;

-- One row at a time: a name whose canonical form another live item already has keeps
-- its old form (both stay reachable as before).
DO $$
DECLARE r record;
BEGIN
    FOR r IN SELECT tenant_id, collection_id, id, name FROM items
             WHERE name <> postern_canonical_segment(name) LOOP
        BEGIN
            UPDATE items SET name = postern_canonical_segment(r.name)
             WHERE tenant_id = r.tenant_id AND collection_id = r.collection_id AND id = r.id;
        EXCEPTION WHEN unique_violation THEN
            NULL;
        END;
    END LOOP;
    FOR r IN SELECT tenant_id, collection_id, path FROM dav_files LOOP
        BEGIN
            UPDATE dav_files SET path = (
                SELECT string_agg(postern_canonical_segment(s), '/' ORDER BY o)
                FROM regexp_split_to_table(r.path, '/') WITH ORDINALITY AS t(s, o))
             WHERE tenant_id = r.tenant_id AND collection_id = r.collection_id AND path = r.path;
        EXCEPTION WHEN unique_violation THEN
            NULL;
        END;
    END LOOP;
END
$$;
