DROP INDEX organisations_province_idx;
DROP INDEX organisations_updated_idx;
DROP INDEX organisations_created_idx;
DROP INDEX organisations_name_idx;
DROP TABLE partners;
DROP TABLE university_rankings;
DROP TABLE universities;
DROP TABLE irccs;
