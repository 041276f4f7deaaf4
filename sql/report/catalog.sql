-- The catalog page: every analytics column with its type, description and lineage.
select relation, relation_kind, relation_description, column_name, data_type, description, built_from
from analytics.catalog
order by relation, column_index
