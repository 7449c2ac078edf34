-- Collection properties clients set (PROPPATCH, MKCALENDAR): a description, the
-- calendar's time zone (a VCALENDAR with one VTIMEZONE; floating times in queries are
-- read in it), the components a calendar holds (empty: VEVENT, VTODO, VJOURNAL) and
-- dead properties in any namespace ({ "{ns}name": "<inner markup>" }).
-- `props_version` grows with every client change; the connector carries the
-- properties to the back end and records the version it applied in `props_applied`.
ALTER TABLE collections
    ADD COLUMN description       text   NOT NULL DEFAULT '',
    ADD COLUMN calendar_timezone text   NOT NULL DEFAULT '',
    ADD COLUMN components        text   NOT NULL DEFAULT '',
    ADD COLUMN dead_props        jsonb  NOT NULL DEFAULT '{}',
    ADD COLUMN props_version     bigint NOT NULL DEFAULT 0,
    ADD COLUMN props_applied     bigint NOT NULL DEFAULT 0;
